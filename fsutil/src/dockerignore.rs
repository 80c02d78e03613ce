//! `.dockerignore` patterns. (Being written.)
