//! apply (in progress)
