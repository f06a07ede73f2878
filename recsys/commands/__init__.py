"""Each command's settings: a frozen dataclass per command, its section in a config file, its flags.

``recsys <command>`` generates its flags from the dataclass (:mod:`recsys.cli.flagging`); a config file
holds the experiment's keys at the top level and these under their section name (``serve:``, ...).
"""

from __future__ import annotations

from recsys.commands.activations import ActivationsSettings
from recsys.commands.demo import DemoSettings
from recsys.commands.monitor import MonitorSettings
from recsys.commands.plan import PlanSettings
from recsys.commands.preprocess import PreprocessSettings
from recsys.commands.query import QuerySettings
from recsys.commands.rows import RowsSettings
from recsys.commands.serve import ServeSettings
from recsys.commands.study import StudySettings
from recsys.commands.submit import SubmitSettings

# section -> settings (recsys.config.loading.SECTIONS holds the same names; a test keeps them equal).
COMMANDS: dict[str, type] = {
    "preprocess": PreprocessSettings,
    "submit": SubmitSettings,
    "study": StudySettings,
    "serve": ServeSettings,
    "monitor": MonitorSettings,
    "demo": DemoSettings,
    "plan": PlanSettings,
    "query": QuerySettings,
    "activations": ActivationsSettings,
    "rows": RowsSettings,
}

__all__ = ["COMMANDS", "ActivationsSettings", "DemoSettings", "MonitorSettings", "PlanSettings",
           "PreprocessSettings", "QuerySettings", "RowsSettings", "ServeSettings", "StudySettings",
           "SubmitSettings"]
