//! Shell-word processing: quote removal, escapes and `$VAR` expansion. (Being written.)
