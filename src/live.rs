//! live (in progress)
