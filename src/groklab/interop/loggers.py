"""Moved: the metric sinks live with training, in groklab.train.loggers (ARCHITECTURE.md); this name stays for
older imports."""

from groklab.train.loggers import SINKS, Loggers, TensorBoardSink, WandbSink, open_loggers, read_tensorboard

__all__ = ["Loggers", "open_loggers", "read_tensorboard", "SINKS", "TensorBoardSink", "WandbSink"]
