"""Each command's settings: a frozen dataclass per command, its section in a config file, its flags.

``recsys <command>`` generates its flags from the dataclass (:mod:`recsys.cli.flagging`); a config file
holds the experiment's keys at the top level and these under their section name (``serve:``, ...).
"""

from __future__ import annotations

from recsys.settings.activations import ActivationsSettings
from recsys.settings.compare import CompareSettings
from recsys.settings.demo import DemoSettings
from recsys.settings.monitor import MonitorSettings
from recsys.settings.plan import PlanSettings
from recsys.settings.preprocess import PreprocessSettings
from recsys.settings.promote import PromoteSettings
from recsys.settings.query import QuerySettings
from recsys.settings.reproduce import ReproduceSettings
from recsys.settings.rows import RowsSettings
from recsys.settings.serve import ServeSettings
from recsys.settings.study import StudySettings
from recsys.settings.submit import SubmitSettings

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
    "compare": CompareSettings,
    "promote": PromoteSettings,
    "reproduce": ReproduceSettings,
}

__all__ = ["COMMANDS", "ActivationsSettings", "CompareSettings", "DemoSettings", "MonitorSettings",
           "PlanSettings", "PreprocessSettings", "PromoteSettings", "QuerySettings", "ReproduceSettings",
           "RowsSettings",
           "ServeSettings", "StudySettings", "SubmitSettings"]
