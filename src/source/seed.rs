//! Seed text files -> entries.
