"""The pipeline: classify → correlate → route, and operator commands, as pure functions
over in-memory state. No I/O here: the writer owns I/O (ruff's banned-api rule keeps it so).
"""

from alarmdesk.pipeline.engine import CorrelationSettings, Pipeline
from alarmdesk.pipeline.results import PipelineResult

__all__ = ["CorrelationSettings", "Pipeline", "PipelineResult"]
