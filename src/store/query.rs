//! Read queries for the `harness` CLI.
