"""A round's decisions as typed values: the reward screen's `Selection` (saved as selection.json
before anything it picks is trained, halving.py) and confirmation's verdicts (`Confirmation`,
confirm.py).

selection.json is read back on resume, so its shape is a file format: `to_json` writes the keys a
round has always written (`model_run_id`, `scores`, `spreads`, `picks`, `explored`, `metrics`,
`acquisition`, `wave_sizes`, `waves`, and after a refit `rescores` and `refits`), and `from_json` is
the one place that reads the older shapes (before waves: no `waves`, no `wave_sizes`; keys this
version does not know are kept and written back as they were). Whether a file may be acted on at
all is resume.check_selection's question, asked before `from_json`.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..tracking import names

# keys of selection.json that older versions may lack: absent stays absent when written back
_OPTIONAL = ("spreads", "metrics", "acquisition", "rescores", "refits")
_KNOWN = ("model_run_id", "scores", "picks", "explored", "waves", "wave_sizes", *_OPTIONAL)


@dataclass(frozen=True)
class Selection:
    """Which of a round's valid proposals the one-pass rung trains, and why.

    Attributes:
        model_run_id: the run of the reward model (champion) that decided.
        scores: sha256 -> the champion's score, for every valid proposal, before any refit.
        picks: every pick so far (all waves), in the order they were picked.
        explored: the picks chosen at random (exploration), a subset of `picks`.
        waves: the picks wave by wave (`[discover] waves`); `picks` is their concatenation.
        wave_sizes: how many each wave was meant to pick; fewer `waves` than sizes: more to come.
        spreads: sha256 -> the ensemble's standard deviation (None: a file from before it).
        metrics: the decision's diversity metrics, logged on the round run (None: absent).
        acquisition: {"rule", "beta"} of the decision (None: a file from before it).
        rescores: sha256 -> the latest score of a proposal still open after a refit (None: no
            refit yet).
        refits: one record per refit: {"wave", "learned", "model_run_id"} (None: no refit yet).
        extra: keys of the file this version does not know, written back unchanged.
    """

    model_run_id: str
    scores: dict[str, float]
    picks: tuple[str, ...]
    explored: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    wave_sizes: tuple[int, ...]
    spreads: dict[str, float] | None = None
    metrics: dict[str, float | None] | None = None
    acquisition: dict | None = None
    rescores: dict[str, float] | None = None
    refits: tuple[dict, ...] | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def first(cls, decision: dict, wave_sizes: list[int]) -> "Selection":
        """The reward screen's first decision (reward.screen.decide's dictionary): its picks are the
        first of `wave_sizes` waves."""
        return cls.from_json({**decision, "wave_sizes": list(wave_sizes),
                              "waves": [list(decision["picks"])]})

    @classmethod
    def from_json(cls, data: dict) -> "Selection":
        """selection.json as any version wrote it (checked by resume.check_selection first)."""
        picks = tuple(data["picks"])
        return cls(model_run_id=data["model_run_id"], scores=dict(data["scores"]), picks=picks,
                   explored=tuple(data["explored"]),
                   # saved by a version before waves: its picks are its one wave
                   waves=tuple(tuple(w) for w in data.get("waves", [picks])),
                   wave_sizes=tuple(data.get("wave_sizes", [len(picks)])),
                   spreads=_copy(data.get("spreads")), metrics=_copy(data.get("metrics")),
                   acquisition=_copy(data.get("acquisition")), rescores=_copy(data.get("rescores")),
                   refits=None if data.get("refits") is None else tuple(dict(r) for r in data["refits"]),
                   extra={k: v for k, v in data.items() if k not in _KNOWN})

    def to_json(self) -> dict:
        """selection.json: the same keys as the round has always written."""
        out = {**self.extra, "model_run_id": self.model_run_id, "scores": dict(self.scores),
               "picks": list(self.picks), "explored": list(self.explored),
               "waves": [list(w) for w in self.waves], "wave_sizes": list(self.wave_sizes)}
        for key in _OPTIONAL:
            value = getattr(self, key)
            if value is not None:
                out[key] = [dict(r) for r in value] if key == "refits" else dict(value)
        return out

    def with_wave(self, decision: dict, learned: int) -> "Selection":
        """This selection and one more wave: `decision` (reward.screen.rescore's dictionary) picked
        among the proposals still open, by the champion refitted on `learned` evaluations."""
        wave = len(self.waves)
        return replace(self, waves=self.waves + (tuple(decision["picks"]),),
                       picks=self.picks + tuple(decision["picks"]),
                       explored=self.explored + tuple(decision["explored"]),
                       rescores={**(self.rescores or {}), **decision["scores"]},
                       refits=(self.refits or ()) + ({"wave": wave, "learned": learned,
                                                      "model_run_id": decision["model_run_id"]},))

    @property
    def more_waves(self) -> bool:
        """Whether a wave is still to be picked."""
        return len(self.waves) < len(self.wave_sizes)

    @property
    def next_size(self) -> int:
        return self.wave_sizes[len(self.waves)]

    def latest_scores(self) -> dict[str, float]:
        """sha256 -> the latest score of every scored proposal (a refit's where there was one)."""
        return {**self.scores, **(self.rescores or {})}

    def screening(self) -> dict[str, tuple[dict[str, float], dict[str, str]]]:
        """sha256 -> (metrics, tags) that a scored proposal's runs carry: the score that placed it,
        how it was picked (`reward`, `explore` or `screened-out`) and, when picked, its wave."""
        waves = {sha: i for i, wave in enumerate(self.waves) for sha in wave}
        picks, explored = set(self.picks), set(self.explored)
        out = {}
        for sha, score in self.latest_scores().items():
            tags = {names.SCREEN_PICK: "explore" if sha in explored else
                    "reward" if sha in picks else "screened-out"}
            if sha in waves:
                tags[names.SCREEN_WAVE] = str(waves[sha])
            metrics = {names.REWARD_SCORE: float(score)}
            rescored = self.rescores or {}
            if sha in (self.spreads or {}) and sha not in rescored:  # later waves' spreads are not kept
                metrics[names.REWARD_SPREAD] = float(self.spreads[sha])  # the review queue flags wide ones
            out[sha] = (metrics, tags)
        return out

    def screened(self, by_sha: dict) -> dict:
        """sha256 -> the scored hypothesis, annotated with what its runs record of the screen (its
        score, how it was picked, its wave): new values, the round's hypotheses are left as they are."""
        return {sha: by_sha[sha].annotated(tags=tags, metrics=metrics)
                for sha, (metrics, tags) in self.screening().items()}


def _copy(value):
    return None if value is None else dict(value)


@dataclass(frozen=True)
class Confirmation:
    """A round's selected hypotheses (sha256s), their confirmation evaluations and verdicts."""

    selected: tuple[str, ...] = ()
    evaluations: dict = field(default_factory=dict)  # sha256 -> the confirm Evaluation
    q_values: dict[str, float] = field(default_factory=dict)
    confirmed: frozenset[str] = frozenset()
