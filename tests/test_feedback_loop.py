"""The whole retraining loop, end to end (slow: it trains real bundles; CI runs it).

A spam wave the current bundle misses (tests/data/spam_wave.jsonl: 300 comments promoting a made-up
crypto app, "Quokka", written for this test) reaches a running service. Moderators reject 200 of
them as spam through the queue API (and approve 60 genuine comments written here), then
`scripts/retrain.py` runs as cron would. The candidate must be promoted, the running service must
switch to it without a restart, and it must catch clearly more of the other 100 wave comments
while ham stays within a 1% false-positive rate.

To keep CI time sane the bundles are trained on training_data/ plus a fixed sample of the shared
corpora (every k-th row of each file, at most SAMPLE_ROWS per file, written to a temporary corpora
directory; training_data/ alone when ../shared/corpora is absent), not on the full corpora.
The baseline is trained the same way (`retrain.py --force` before any feedback), so the comparison
isolates what the feedback taught.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.config import Settings
from api.db import Database, migrate
from api.main import create_app
from api.schemas import SiteCreate
from api.store.sites import create_moderator, create_site
from classifier.dataset import default_corpora_dir, default_training_data_dir, load_training_data, with_split
from classifier.engine import Engine
from classifier.evaluation import dev_sets

REPO = Path(__file__).resolve().parent.parent
WAVE = REPO / "tests" / "data" / "spam_wave.jsonl"
SAMPLE_ROWS = 1500
ADMIN_TOKEN = "admin-token-for-the-loop-test"

sys.path.insert(0, str(REPO / "scripts"))
import retrain  # noqa: E402

pytestmark = pytest.mark.slow

#: Genuine reader comments on the wave's articles (the approve decisions), some about money and crypto.
HAM = [
    (
        "Average rents hit record high as supply dries up",
        "We pay more than half our income on rent now. Something has to give.",
    ),
    (
        "Average rents hit record high as supply dries up",
        "Build more homes. It's not complicated, it's just politically hard.",
    ),
    (
        "Average rents hit record high as supply dries up",
        "My landlord hasn't fixed the boiler in two years but still put the rent up.",
    ),
    (
        "Record number of first-time buyers priced out",
        "Saved for six years and the deposit target keeps moving away from us.",
    ),
    (
        "Record number of first-time buyers priced out",
        "Shared ownership looked good on paper until we read the service charges.",
    ),
    ("Mortgage rates tick up again", "Our fix ends in March. Dreading the new rate, honestly."),
    (
        "Mortgage rates tick up again",
        "Worth speaking to a broker early, ours found a deal three months before the end.",
    ),
    (
        "Inflation falls to 3.1% but food prices stay stubborn",
        "Prices falling slower isn't the same as prices falling. My shop still costs more.",
    ),
    (
        "Inflation falls to 3.1% but food prices stay stubborn",
        "Butter has nearly doubled since 2021. Nobody's wages have.",
    ),
    (
        "Energy bills to rise again this winter, regulator warns",
        "We're wearing jumpers indoors already and it's only October.",
    ),
    (
        "Energy bills to rise again this winter, regulator warns",
        "The standing charge is the real scandal. You pay it even if you use nothing.",
    ),
    (
        "Supermarket chain announces price freeze on 500 items",
        "A freeze after three years of rises is not exactly generous.",
    ),
    (
        "Cost of a pint passes £7 in the capital",
        "Pubs are closing round here because nobody can afford a night out any more.",
    ),
    ("Water bills set to jump by a fifth", "Pay more for a company that dumps sewage in the river. Brilliant."),
    ("Local factory to close with loss of 400 jobs", "My dad worked there for thirty years. This will gut the town."),
    (
        "Tech giant announces thousands of layoffs",
        "They had record profits last quarter. This is about the share price.",
    ),
    ("Minimum wage to increase from April", "Good news, but rent will eat most of it within a year."),
    (
        "Small businesses say they are 'barely surviving'",
        "Our café's energy bill tripled. We raised prices and lost regulars.",
    ),
    ("United held to frustrating draw at home", "Same problem every week: no one in midfield can pass forward."),
    (
        "Transfer window: club closes in on £60m striker",
        "Sixty million for a player who scored eight goals last season? Madness.",
    ),
    (
        "Heatwave warning issued as temperatures set to hit 34C",
        "Please check on elderly neighbours, the heat is dangerous for them.",
    ),
    (
        "Snow expected across the north this weekend",
        "The gritters never come down our road. Stocking up on salt myself.",
    ),
    (
        "Holiday prices soar as families book summer breaks",
        "Same week in Cornwall costs double once the schools break up.",
    ),
    (
        "Savings rates fall as banks cut deals",
        "Rates drop the day after the base rate moves, but mortgage rates take months.",
    ),
    ("Bitcoin tumbles below $60,000", "I bought some in 2021 and I'm still down. Never again."),
    ("Bitcoin tumbles below $60,000", "Volatility like this is exactly why it isn't a currency."),
    (
        "Regulator issues warning over crypto investment scams",
        "My uncle lost his savings to an app that promised guaranteed returns. Report them.",
    ),
    (
        "Regulator issues warning over crypto investment scams",
        "If someone in the comments promises you easy money from an app, it's a scam.",
    ),
    (
        "Regulator issues warning over crypto investment scams",
        "The ads are everywhere on social media. The platforms should be fined.",
    ),
    (
        "Bosses order staff back to the office five days a week",
        "Two hours of commuting a day for meetings I could join from home.",
    ),
    (
        "Budget: what the chancellor's plans mean for your wallet",
        "Frozen tax thresholds are a tax rise by another name.",
    ),
    ("Record number of people working second jobs", "I drive deliveries at weekends just to cover the nursery bill."),
    ("Council tax to rise by maximum 5%", "Bins collected every three weeks now and the bill still goes up."),
    ("Gold price hits all-time high", "Gold goes up whenever people are scared. Says a lot about the mood."),
    (
        "Young people 'giving up' on home ownership, poll suggests",
        "I'm 34 and renting with two flatmates. Ownership feels like a fantasy.",
    ),
    ("House prices dip for first time in two years", "A 1% dip after a 40% rise is not going to help anyone I know."),
    ("Bank of England warns of 'sticky' inflation", "Services inflation is the bit to watch, and it isn't moving."),
    ("Gas boiler ban delayed by five years", "Heat pumps cost a fortune to install. The grant barely covers half."),
    ("Graduates face toughest job market in a decade", "My niece applied for eighty roles and got two interviews."),
    (
        "Schools struggle to fill teaching vacancies",
        "Teachers I know are leaving for jobs with less stress and more pay.",
    ),
    ("Striking nurses reject latest pay offer", "Clap for them in a pandemic, refuse them a fair wage afterwards."),
    ("Hospital waiting lists at all-time high", "Waited eleven months for a knee operation. Still waiting."),
    (
        "Fans protest over season ticket price hike",
        "Football without fans is nothing. The owners keep forgetting that.",
    ),
    ("Cricket: England collapse on day three", "Lost seven wickets in a session on a flat pitch. Embarrassing."),
    ("Storm brings flooding to coastal towns", "Thoughts with everyone clearing out their homes this week."),
    ("Train fares to rise by 5% in January", "More money for trains that are cancelled half the time."),
    ("Car insurance premiums up 40% in a year", "No claims in fifteen years and my renewal went up by £300."),
    (
        "Pensioners warned over rising cost of care",
        "My mum's care home fees went up again. Her house will be gone in four years.",
    ),
    (
        "Childcare costs now exceed rent for many families",
        "We worked it out and my wife would earn £80 a month after nursery fees.",
    ),
    ("Four-day week trial hailed a success", "Our firm tried it. Same output, far fewer sick days."),
    (
        "Pet insurance costs surge as vet bills climb",
        "Our dog's premium went up because she turned eight. Nothing else changed.",
    ),
    (
        "Wedding costs now average £20,000, survey finds",
        "We got married at the registry office and had a barbecue. Best day ever.",
    ),
    (
        "Students struggle to find affordable accommodation",
        "My son is commuting ninety minutes because halls cost more than his loan.",
    ),
    ("Coffee prices rise as crop failures bite", "Climate change showing up in the price of my morning coffee."),
    ("State pension age could rise to 70", "People in manual jobs won't make it to 70 in good health. Unfair."),
    ("Interest rates held for third month in a row", "Savers get nothing, borrowers get squeezed. Who is this for?"),
    (
        "Petrol prices climb ahead of bank holiday weekend",
        "Filled up yesterday at 152p. The price goes up like a rocket and down like a feather.",
    ),
    (
        "Netflix raises subscription prices again",
        "Cancelled it. Rotating one streaming service a month saves a fortune.",
    ),
    (
        "Beloved local bakery closes after 60 years",
        "Their Saturday doughnuts were the best thing on the high street. Sad day.",
    ),
    ("Dog walker rescues sheep stuck in ditch", "What a lovely story. Well done to her for wading in."),
]


def _sample_corpora(source: Path, out: Path) -> Path | None:
    """Every k-th row of each shared corpus (header and `split` column kept), at most SAMPLE_ROWS."""
    if not source.is_dir():
        return None
    out.mkdir()
    for path in sorted(source.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.reader(handle)
                header, rows = next(reader), list(reader)
            step = max(1, len(rows) // SAMPLE_ROWS)
            with (out / path.name).open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(header)
                writer.writerows(rows[::step][:SAMPLE_ROWS])
        elif path.suffix == ".jsonl":
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            step = max(1, len(lines) // SAMPLE_ROWS)
            (out / path.name).write_text("\n".join(lines[::step][:SAMPLE_ROWS]) + "\n", encoding="utf-8")
    return out


def _caught(verdict: dict) -> bool:
    """Held or rejected, with spam among the reasons."""
    return verdict["decision"] != "approve" and any(r["label"] == "spam" for r in verdict["reasons"])


def _moderate(client: TestClient, key: str, items: list[dict]) -> list[dict]:
    verdicts = []
    for start in range(0, len(items), 100):
        response = client.post(
            "/v1/moderate/batch", json={"items": items[start : start + 100]}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        verdicts.extend(response.json()["results"])
    return verdicts


def _item(comment_id: str, text: str, title: str) -> dict:
    return {"comment": {"id": comment_id, "text": text}, "article": {"title": title}}


def _serving(client: TestClient) -> str:
    return client.get("/readyz").json()["checks"]["bundle"]


def test_moderator_decisions_retrain_promote_and_hot_reload(tmp_path, monkeypatch, capsys):
    for name in list(os.environ):
        if name.startswith("MODERATO_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    url = f"sqlite:///{tmp_path / 'moderato.db'}"  # PostgreSQL: the same store code runs in tests/api
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MODERATO_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DATABASE_URL", url)
    migrate(url)
    corpora = _sample_corpora(default_corpora_dir(), tmp_path / "corpora")
    corpus_args = ["--corpora", str(corpora)] if corpora else ["--no-corpora"]

    # The baseline: same recipe, no feedback yet (forced: there is nothing to judge it on).
    assert retrain.main(["--force", "--version", "m-baseline", *corpus_args]) == 0
    print(capsys.readouterr().out.strip().splitlines()[-1])

    db = Database.from_url(url)
    with db.write_session() as session:
        created = create_site(session=session, site_in=SiteCreate(name="money-news"))
        _, secret = create_moderator(session=session, site_name="money-news", name="ada")
    key, moderator = created.api_key, {"Authorization": f"Bearer {secret}"}

    settings = Settings(
        data_dir=data_dir,
        database_url_override=url,
        auto_migrate=False,
        admin_token=ADMIN_TOKEN,
        bundle_check_seconds=0.2,
        gil_switch_interval=0,
        auth_cache_seconds=0,
    )
    wave = [json.loads(line) for line in WAVE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(wave) == 300
    decided = [i for i in range(len(wave)) if i % 3 != 2]  # 200
    unseen = [i for i in range(len(wave)) if i % 3 == 2]  # 100, never decided, never trained on

    with TestClient(create_app(settings)) as client:
        assert _serving(client) == "m-baseline"
        verdicts = _moderate(client, key, [_item(f"w{i}", w["text"], w["article_title"]) for i, w in enumerate(wave)])
        hams = _moderate(client, key, [_item(f"h{i}", text, title) for i, (title, text) in enumerate(HAM)])
        assert all(v["model_version"] == "m-baseline" for v in verdicts + hams)
        before = sum(_caught(verdicts[i]) for i in unseen) / len(unseen)

        # Moderators work through the queue: wave comments rejected as spam (the whole comment is
        # the plug), genuine ones approved, interleaved as they would arrive.
        order = [("spam", i) for i in decided]
        for k, h in enumerate(hams):
            order.insert(k * len(order) // len(hams), ("ham", h["id"]))
        for kind, ref in order:
            if kind == "spam":
                text = wave[ref]["text"]
                comment_id = verdicts[ref]["id"]
                body = {"action": "reject", "label": "spam", "spans": [{"start": 0, "end": len(text)}]}
            else:
                comment_id, body = ref, {"action": "approve"}
            response = client.post(f"/v1/queue/{comment_id}/decision", json=body, headers=moderator)
            assert response.status_code == 200, response.text

        # Retrain as cron would: exit 0 means promoted.
        code = retrain.main(["--version", "m-retrained", *corpus_args])
        out = capsys.readouterr().out
        print(out)
        assert code == 0, out
        assert out.strip().splitlines()[-1].startswith("retrain: promoted m-retrained")
        card = data_dir / "bundles" / "m-retrained" / "model_card.md"
        assert card.is_file() and "feedback" in card.read_text(encoding="utf-8")
        assert list(card.parent.glob("pr_*.png"))

        # The running service picks the promotion up on its own, without a restart.
        deadline = time.monotonic() + 30
        while _serving(client) != "m-retrained" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _serving(client) == "m-retrained"
        reload = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert reload.status_code == 200 and reload.json()["version"] == "m-retrained"

        again = _moderate(
            client, key, [_item(f"w{i}-again", wave[i]["text"], wave[i]["article_title"]) for i in unseen]
        )
        assert all(v["model_version"] == "m-retrained" for v in again)
        after = sum(_caught(v) for v in again) / len(again)

    # Ham false-positive rate at the spam reject threshold, on held-out genuine comments: the `dev`
    # rows of training_data/ written as ham (incl. hard ham) and the ham of the sampled corpora's dev split.
    engine = Engine.load(data_dir / "bundles" / "m-retrained")
    reject = engine.policy.thresholds["spam"].reject
    dev = with_split(load_training_data(default_training_data_dir()), "dev")
    sets = {"training_data": [(e.text, e.article) for e in dev if e.kind in ("ham", "hard_ham")]}
    for name, rows in dev_sets(corpora, None).items():
        sets[name] = [(e.text, None) for e in rows if e.labels.get("spam") == 0.0]
    fprs = {
        name: sum(engine.assess(text, article).scores["spam"] >= reject for text, article in rows) / len(rows)
        for name, rows in sets.items()
        if rows
    }
    print(f"wave recall on the 100 unseen comments: before {before:.2f}, after {after:.2f}")
    print(
        "ham FPR at the spam reject threshold: " + ", ".join(f"{k} {v:.4f} (n={len(sets[k])})" for k, v in fprs.items())
    )
    assert after >= before + 0.3 and after >= 0.8
    # Pooled: a single dev set may hold only ~100 ham rows, where one comment is already 1%.
    rejected = sum(fprs[name] * len(sets[name]) for name in fprs)
    pooled = rejected / sum(len(sets[name]) for name in fprs)
    print(f"pooled ham FPR at the spam reject threshold: {pooled:.4f}")
    assert pooled <= 0.01
    db.dispose()
