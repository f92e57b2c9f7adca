"""The words the pages show for the API's stage and phase names: one table (``web.LABELS``),
used by the templates and carried by every page for its scripts (the browser test reads the
words the scripts render)."""

from __future__ import annotations

from dronecommon.domain import DeliveryStage
from webapp import web
from webapp.operators import PHASES


def test_every_stage_and_phase_has_words_and_other_names_pass_through() -> None:
    names = [stage.value for stage in DeliveryStage] + list(PHASES)
    assert set(names) == set(web.LABELS)
    assert web.label("HeadedToDropoff") == "Headed to drop-off"
    assert web.label("Returning") == "flying home"
    assert web.label("SomethingNew") == "SomethingNew"
    assert web.label(None) == ""
