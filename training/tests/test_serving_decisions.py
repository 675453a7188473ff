"""One served decision: every promote / roll back / retire sequence leaves exactly one version that
end users get, and roll-backs always lead back to the recommender alone."""

from __future__ import annotations

import random

import pytest

from training import registry
from training.exceptions import VersionStateError
from training.models import ModelVersion, ServingDecision
from training.store import served_algorithm

from .conftest import make_version

pytestmark = pytest.mark.django_db

HELD_BACK = {
    "passed": False,
    "chosen": False,
    "reason": "judge win rate 0.52 [0.43, 0.61] does not clear 0.5",
}


@pytest.fixture
def versions(monkeypatch):
    """base v1 (served by training), ppo v1 and qlearning v1 (held back), quality_rerank v1 (passed).

    Artifact verification is tested on its own (test_promote_verifies.py); here every artifact passes.
    """
    monkeypatch.setattr(registry, "model_version_verify", lambda *, version: None)
    base = make_version("base", 1)
    registry.model_version_activate(version=base)
    made = {"base": base}
    for algorithm, gate in (
        ("ppo", HELD_BACK),
        ("qlearning", HELD_BACK),
        ("quality_rerank", {"passed": True}),
    ):
        version = make_version(algorithm, 1)
        version.gate = gate
        version.save(update_fields=["gate"])
        made[algorithm] = version
    return made


def served() -> ModelVersion:
    """What users get, asserted to be one active version that serving agrees on."""
    decision = registry.served_decision()
    assert decision is not None
    assert decision.version.status == ModelVersion.Status.ACTIVE
    assert served_algorithm() == decision.version.algorithm
    return decision.version


def test_promoting_serves_exactly_that_version_and_promoting_the_recommender_returns_to_it(versions, sam):
    registry.model_version_promote(version=versions["ppo"], actor=sam, note="try it", override_gate=True)
    registry.model_version_promote(version=versions["qlearning"], actor=sam, note="try", override_gate=True)
    assert served() == versions["qlearning"]
    assert ModelVersion.objects.filter(status="active").count() == 3  # loaded, but only one served
    registry.model_version_promote(version=versions["base"], actor=sam, note="the recommender alone")
    assert served() == versions["base"]  # it was active all along; now users get it


def test_overriding_the_gate_needs_a_confirmation_and_a_note(versions, sam):
    with pytest.raises(VersionStateError, match="held PPO v1 back"):
        registry.model_version_promote(version=versions["ppo"], actor=sam, note="why not")
    with pytest.raises(VersionStateError, match="a note is required"):
        registry.model_version_promote(version=versions["ppo"], actor=sam, note="  ", override_gate=True)
    assert served() == versions["base"]
    registry.model_version_promote(
        version=versions["ppo"], actor=sam, note="annotators liked it", override_gate=True
    )
    decision = registry.served_decision()
    assert (decision.version, decision.actor, decision.overrode_gate) == (versions["ppo"], sam, True)
    assert decision.note == "annotators liked it"
    registry.model_version_promote(version=versions["quality_rerank"], actor=sam)  # the gate passed it
    assert registry.served_decision().overrode_gate is False


def test_roll_back_after_a_first_promotion_returns_to_the_recommender(versions, sam):
    with pytest.raises(VersionStateError, match="recommender alone"):
        registry.serving_rollback(actor=sam)
    registry.model_version_promote(version=versions["ppo"], actor=sam, note="n", override_gate=True)
    assert registry.serving_rollback(actor=sam) == versions["base"]
    assert served() == versions["base"]
    with pytest.raises(VersionStateError, match="recommender alone"):
        registry.serving_rollback(actor=sam)


def test_roll_backs_walk_back_through_every_decision(versions, sam):
    for name in ("ppo", "qlearning", "quality_rerank"):
        registry.model_version_promote(version=versions[name], actor=sam, note="n", override_gate=True)
    walked = [registry.serving_rollback(actor=sam).algorithm for _ in range(3)]
    assert walked == ["qlearning", "ppo", "base"]


def test_retiring_the_served_version_serves_the_decision_before_it(versions, sam):
    registry.model_version_promote(version=versions["ppo"], actor=sam, note="n", override_gate=True)
    registry.model_version_promote(version=versions["quality_rerank"], actor=sam)
    registry.model_version_retire(version=versions["quality_rerank"], actor=sam, note="complaints")
    assert served() == versions["ppo"]
    assert registry.served_decision().action == ServingDecision.Action.RETIRED
    with pytest.raises(VersionStateError, match="every policy re-ranks"):
        registry.model_version_retire(version=versions["base"], actor=sam)
    with pytest.raises(VersionStateError, match="not active"):
        registry.model_version_retire(version=versions["quality_rerank"], actor=sam)
    registry.model_version_retire(version=versions["ppo"], actor=sam)
    assert served() == versions["base"]


def test_a_random_walk_of_admin_actions_always_leaves_one_served_version_and_a_way_back(versions, sam):
    rng = random.Random(7)
    names = list(versions)
    for _ in range(60):
        action, name = rng.choice(["promote", "promote", "rollback", "retire"]), rng.choice(names)
        try:
            if action == "promote":
                registry.model_version_promote(
                    version=versions[name], actor=sam, note="walk", override_gate=True
                )
            elif action == "rollback":
                registry.serving_rollback(actor=sam)
            else:
                registry.model_version_retire(version=versions[name], actor=sam)
        except VersionStateError:
            pass
        served()  # exactly one, active, and serving agrees
    for _ in range(100):  # roll-backs end at the recommender alone
        try:
            registry.serving_rollback(actor=sam)
        except VersionStateError as error:
            assert "recommender alone" in str(error)
            break
    assert served().algorithm == "base"


def test_training_that_activates_a_new_version_serves_it(versions, sam):
    registry.model_version_promote(version=versions["ppo"], actor=sam, note="n", override_gate=True)
    second = make_version("base", 2)
    registry.model_version_activate(version=second)  # a training run whose gate chose it
    assert served() == second
    assert registry.serving_rollback(actor=sam) == versions["ppo"]


def test_the_api_says_what_users_get_and_rolls_back_to_the_recommender(versions, sam, client):
    client.force_login(sam)
    response = client.post(
        f"/api/models/{versions['ppo'].pk}/promote/", {"note": "x"}, content_type="application/json"
    )
    assert response.status_code == 409 and "override the gate" in response.json()["detail"]
    response = client.post(
        f"/api/models/{versions['ppo'].pk}/promote/",
        {"note": "annotators liked it", "override_gate": True},
        content_type="application/json",
    )
    assert response.status_code == 200 and response.json()["served"] is not None
    serving = client.get("/api/serving/").json()
    assert (serving["policy"], serving["decision"]["overrode_gate"]) == ("ppo", True)
    assert serving["decision"]["actor"] == "sam" and serving["decision"]["note"] == "annotators liked it"
    assert (
        client.post("/api/models/rollback/", {}, content_type="application/json").json()["algorithm"]
        == "base"
    )
    assert client.get("/api/serving/").json()["policy"] == "base"
    assert client.post("/api/models/rollback/", {}, content_type="application/json").status_code == 409
    response = client.post(f"/api/models/{versions['base'].pk}/retire/", {}, content_type="application/json")
    assert response.status_code == 409


def test_the_admin_asks_before_promoting_over_the_gate_and_the_dashboard_says_what_users_get(
    versions, sam, client
):
    client.force_login(sam)
    url = "/admin/training/modelversion/"
    ppo = versions["ppo"]
    page = client.post(url, {"action": "promote", "_selected_action": [ppo.pk]})
    assert page.status_code == 200 and b"The gate held this version back" in page.content
    assert served() == versions["base"]  # asking changed nothing
    client.post(url, {"action": "promote", "_selected_action": [ppo.pk], "confirm": "yes", "note": "why"})
    assert served() == versions["base"]  # no override ticked
    client.post(
        url,
        {
            "action": "promote",
            "_selected_action": [ppo.pk],
            "confirm": "yes",
            "note": "why",
            "override_gate": "on",
        },
    )
    assert served() == ppo
    dashboard = client.get("/staff/dashboard/").content.decode()
    assert (
        ">PPO v1</a></strong>" in dashboard
        and "Users get" in dashboard
        and "overriding the gate" in dashboard
    )
    client.post(url, {"action": "roll_back", "_selected_action": [ppo.pk]})
    assert served() == versions["base"]
