"""Data access, named for the domain: keyword-only functions that take a Session and return rows
or `*Public` objects. They never commit; the caller (the writer thread, or a CLI command) does.

    sites      create_site, rotate_key, authenticate_site, update_policy, effective_policy, ...
    comments   store_assessment, find_comment, erase_comment, purge_expired_text, upsert_article, ...
    decisions  record_decision, decision_history, feedback_rows
    webhooks   enqueue_webhook, claim_due_deliveries, record_attempt
    bundles    record_promotion, promoted_version
"""
