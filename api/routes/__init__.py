"""HTTP routes, thin: validate, call one domain function, return a `*Public`."""
