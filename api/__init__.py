"""Moderato's HTTP service: sites and keys, stored verdicts, webhooks, Akismet compatibility.

`api` imports `classifier`, never the reverse. Entry points: `api.main.create_app` (ASGI) and
`api.cli.main` (the `moderato` command).
"""
