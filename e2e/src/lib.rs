//! Cross-plane end-to-end tests live in `tests/`.
