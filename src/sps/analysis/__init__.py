"""Pass@k estimation, the empirical ceiling (coverage), and the `sps` analysis commands."""
