"""The words the pages show for the API's stage and phase names: one table, in Python (the
server-rendered pages) and in common.js (what the scripts render), the same in both."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dronecommon.domain import DeliveryStage
from webapp import web
from webapp.operators import PHASES

COMMON_JS = Path(web.__file__).parent / "static" / "js" / "common.js"


def script_labels() -> dict[str, str]:
    block = re.search(r"const LABELS = \{(.*?)\};", COMMON_JS.read_text(), re.S)
    assert block, "common.js has no LABELS table"
    pairs = re.findall(r'^\s*(\w+): ("[^"]*"),\s*$', block.group(1), re.M)
    return {name: json.loads(text) for name, text in pairs}


def test_the_scripts_and_the_server_use_the_same_words() -> None:
    assert script_labels() == web.LABELS


def test_every_stage_and_phase_has_words_and_other_names_pass_through() -> None:
    names = [stage.value for stage in DeliveryStage] + list(PHASES)
    assert set(names) == set(web.LABELS)
    assert web.label("HeadedToDropoff") == "Headed to drop-off"
    assert web.label("Returning") == "flying home"
    assert web.label("SomethingNew") == "SomethingNew"
    assert web.label(None) == ""
