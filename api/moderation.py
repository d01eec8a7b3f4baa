"""Moderating a comment end to end: resolve article, score with the engine under the site's policy,
store through the single writer (idempotent on the platform's comment id), count and log.

Routes (`/v1/moderate`, `/v1/moderate/batch`, the Akismet endpoints) call this; it holds the
process's engine, which the retraining issue swaps by assigning `moderation.engine`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from api.config import Settings
from api.db import Database
from api.errors import ServiceUnavailable
from api.observability import Metrics
from api.schemas import DecisionCreate, DecisionPublic, ModerateRequest, Site, VerdictPublic
from api.store.comments import (
    StoredVerdict,
    article_for_scoring,
    find_by_text,
    store_assessment,
    text_digest,
)
from api.store.decisions import record_decision
from api.store.sites import effective_policy
from api.writer import Writer
from classifier import Article, Assessment, Engine

log = logging.getLogger("moderato.moderation")


@dataclass
class Moderation:
    """The per-process moderation service (engine + database + writer)."""

    db: Database
    writer: Writer
    settings: Settings
    metrics: Metrics
    engine: Engine | None = None

    def current_engine(self) -> Engine:
        engine = self.engine
        if engine is None:
            raise ServiceUnavailable("No bundle loaded")
        return engine

    def moderate(self, *, site: Site, request: ModerateRequest, source: str = "api") -> VerdictPublic:
        return self.moderate_many(site=site, requests=[request], source=source)[0]

    async def moderate_async(self, *, site: Site, request: ModerateRequest, source: str = "api") -> VerdictPublic:
        """`moderate` for the event loop: scoring (a fraction of a millisecond) runs inline and the
        request awaits the writer's commit without holding a thread; an article that must be read
        from the database sends the whole call to a worker thread instead."""
        article_in = request.article
        if article_in is not None and not (article_in.title or article_in.body):
            return await run_in_threadpool(self.moderate, site=site, request=request, source=source)
        assert site.id is not None
        engine = self.current_engine()
        article = self._article(site.id, request)
        todo = [(0, request, self._assess(engine, site, request, article))]
        [result] = await self.writer.run(lambda s: self._store(s, site, todo, source))
        if result.created:
            self._observe(site, request, result)
        return result.verdict

    async def assess_and_store(
        self,
        *,
        site: Site,
        request: ModerateRequest,
        article: Article | None,
        store: Callable[[Session, Assessment], StoredVerdict],
        log_text: bool = True,
    ) -> tuple[Assessment, StoredVerdict]:
        """For integrations that answer in another format (Perspective, Coral): score `request`'s text
        against `article` under the site's policy, then run `store(session, assessment)` in the single
        writer's transaction (it calls `store_assessment` plus rows of its own). Returns both, so the
        caller can use the full assessment (attributes, evidence for every label)."""
        engine = self.current_engine()
        assessment = self._assess(engine, site, request, article)
        stored = await self.writer.run(lambda s: store(s, assessment))
        if stored.created:
            self._observe(site, request, stored, log_text=log_text)
        return assessment, stored

    def moderate_many(self, *, site: Site, requests: list[ModerateRequest], source: str = "api") -> list[VerdictPublic]:
        """Verdicts in order; comments stored before (same site and id) come back unchanged."""
        assert site.id is not None
        engine = self.current_engine()  # one engine for the whole call, even if a reload swaps it
        verdicts: list[VerdictPublic] = []
        todo: list[tuple[int, ModerateRequest, Assessment]] = []
        registers = False  # does an item in `todo` register or update an article?
        # No read before scoring: the writer's job returns the stored verdict for a known comment
        # id (scoring a duplicate costs less than a query per request). Only an article given by
        # id or URL alone needs a read; when an earlier item of the call registers an article, the
        # items so far are stored first, so the read sees it: a batch answers exactly as its items
        # sent one by one, in order, would (the last title/body sent for an article wins).
        for i, request in enumerate(requests):
            if registers and _reads_article(request):
                verdicts += self._store_all(site, todo, source)
                todo, registers = [], False
            article = self._article(site.id, request)
            todo.append((i, request, self._assess(engine, site, request, article)))
            registers = registers or _registers_article(request)
        verdicts += self._store_all(site, todo, source)
        return verdicts

    def _store_all(
        self, site: Site, todo: list[tuple[int, ModerateRequest, Assessment]], source: str
    ) -> list[VerdictPublic]:
        """Store scored requests in one writer transaction; their verdicts in order."""
        if not todo:
            return []
        stored_list = self.writer.run_sync(lambda s: self._store(s, site, todo, source))
        for (_, request, _), result in zip(todo, stored_list, strict=True):
            if result.created:
                self._observe(site, request, result)
        return [result.verdict for result in stored_list]

    def _article(self, site_id: int, request: ModerateRequest) -> Article | None:
        article_in = request.article
        if article_in is None:
            return None
        if not _reads_article(request):
            return Article(title=article_in.title or "", body=article_in.body or "")
        with self.db.read_session() as session:
            return article_for_scoring(session=session, site_id=site_id, article_in=article_in)

    @staticmethod
    def _assess(engine: Engine, site: Site, request: ModerateRequest, article: Article | None) -> Assessment:
        policy = effective_policy(site=site, base=engine.policy, mode=request.mode)
        return engine.assess(request.comment.text, article, policy=policy)

    @staticmethod
    def _store(
        session: Session, site: Site, todo: list[tuple[int, ModerateRequest, Assessment]], source: str
    ) -> list[StoredVerdict]:
        return [
            store_assessment(
                session=session,
                site=site,
                comment_in=request.comment,
                article_in=request.article,
                assessment=assessment,
                mode=request.mode or site.policy_mode,
                source=source,
            )
            for _, request, assessment in todo
        ]

    def _observe(self, site: Site, request: ModerateRequest, stored: StoredVerdict, *, log_text: bool = True) -> None:
        verdict = stored.verdict
        self.metrics.decisions.labels(decision=verdict.decision, label=stored.label or "none").inc()
        extra: dict[str, object] = {
            "event": "comment.moderated",
            "site": site.name,
            "id": verdict.id,
            "comment_id": verdict.comment_id,
            "decision": verdict.decision,
            "status": verdict.status,
            "label": stored.label,
            "scores": verdict.scores,
            "model_version": verdict.model_version,
            "chars": len(request.comment.text),
        }
        if self.settings.log_comment_text and log_text:
            extra["text"] = request.comment.text
        log.info("comment moderated", extra=extra)


def _reads_article(request: ModerateRequest) -> bool:
    """The article is named by id or URL alone: scoring reads the registered one."""
    article_in = request.article
    return article_in is not None and not (article_in.title or article_in.body)


def _registers_article(request: ModerateRequest) -> bool:
    """Storing the request registers or updates an article (as `store_assessment` does)."""
    article_in = request.article
    return article_in is not None and bool(article_in.title or article_in.body or article_in.url)


def record_feedback(
    moderation: Moderation, *, site: Site, request: ModerateRequest, label: str, source: str = "akismet"
) -> DecisionPublic:
    """A platform says a comment is spam or ham (Akismet submit-spam / submit-ham).

    The newest stored comment of the site with the same text gets the decision; an unknown text
    is moderated and stored first, so every label points at a comment (and erasure covers it).
    """
    assert site.id is not None
    site_id = site.id
    digest = text_digest(request.comment.text)
    with moderation.db.read_session() as session:
        comment = find_by_text(session=session, site_id=site_id, digest=digest)
    comment_id = (
        comment.id if comment is not None else moderation.moderate(site=site, request=request, source=source).id
    )
    assert comment_id is not None
    decision = DecisionCreate.model_validate({"action": "approve" if label == "ham" else "reject", "label": label})
    return moderation.writer.run_sync(
        lambda s: record_decision(
            session=s, site_id=site_id, comment_id=comment_id, decision=decision, source=source, notify=False
        )
    )
