//! cloudflare (in progress)
