//! The local image store operations.
