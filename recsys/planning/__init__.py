"""Cost planning without TensorFlow: embedding tables, optimizer state and all-reduce bytes per step."""

from recsys.planning.cost import Plan, TablePlan, plan_experiment
from recsys.planning.quantity import format_bytes, parse_quantity

__all__ = ["Plan", "TablePlan", "format_bytes", "parse_quantity", "plan_experiment"]
