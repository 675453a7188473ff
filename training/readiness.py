"""Whether there is enough human feedback for an RLHF run's numbers to mean anything.

Light on purpose: the admin asks before every run, and the web process never imports the trainers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

from feedback.models import Comparison


@dataclass(frozen=True)
class FeedbackReadiness:
    """Whether there are enough judgments for an RLHF run to be judged, said before it starts."""

    judgments: int
    users: int  # context raters the judgments are about; the gate splits by them
    warning: str  # empty when the gate can expect enough held-out evidence

    @property
    def summary(self) -> str:
        return f"{self.judgments} judgment{'s' if self.judgments != 1 else ''} about {self.users} user{'s' if self.users != 1 else ''}"


def feedback_readiness() -> FeedbackReadiness:
    """Judgments so far against what the gate needs, by the shares its user split keeps aside.

    The judge learns from ``GATE_JUDGE_USER_SHARE`` of the users' judgments and must be checked
    on ``GATE_MIN_JUDGE_COMPARISONS``; the head-to-head needs ``GATE_MIN_HELDOUT_USERS`` gate
    users; the reward model's own check needs ``GATE_MIN_HELDOUT_COMPARISONS`` held out. Below
    any of them a run still trains, but its numbers say little and the gate will hold it back.
    """
    judgments = Comparison.objects.filter(task__is_gold=False)
    count = judgments.count()
    users = judgments.values("task__context_rater").distinct().count()
    judge_share, gate_share = settings.GATE_JUDGE_USER_SHARE, settings.GATE_HELDOUT_USER_SHARE
    needed_judgments = max(
        math.ceil(settings.GATE_MIN_JUDGE_COMPARISONS / max(judge_share, 1e-9)),
        math.ceil(settings.GATE_MIN_HELDOUT_COMPARISONS / max(judge_share + gate_share, 1e-9)),
    )
    needed_users = math.ceil(settings.GATE_MIN_HELDOUT_USERS / max(gate_share, 1e-9))
    warning = ""
    if count < needed_judgments or users < needed_users:
        heldout = round(count * (judge_share + gate_share))
        warning = (
            f"Only {count} judgment{'s' if count != 1 else ''} about {users} user{'s' if users != 1 else ''}: "
            f"the reward model would learn from about {count - heldout} and be checked on about {heldout}, "
            f"too few to tell it from chance. The gate needs about {needed_judgments} judgments about "
            f"{needed_users} users before it can trust a reward model or a policy; a run now will train, "
            "but expect the gate to hold it back."
        )
    return FeedbackReadiness(count, users, warning)
