//! Content digests of paths in a tree (in progress).
