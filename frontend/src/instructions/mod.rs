//! Typed instructions built from the parse tree. (Being written.)
