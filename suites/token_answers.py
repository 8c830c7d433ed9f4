"""What every token endpoint answer must be, for the code grant and the refresh grant alike (RFC 6749
§5.1; §6 issues a refreshed token "as described in Section 5.1"): one place, so the two cannot drift."""
from harness.checks import token


def verify_token_answer(verify, ex) -> dict:
    """200 with JSON, expires_in, and the content type and caching headers; returns the body. The caller
    checks the fields its grant requires (token_fields, refresh_answer_fields) and the scope."""
    verify(token.token_ok, ex)
    body = ex.json
    verify(token.token_expires_in, body)
    verify(token.token_content_type, ex)
    verify(token.token_no_store, ex)
    verify(token.token_pragma_no_cache, ex)
    return body
