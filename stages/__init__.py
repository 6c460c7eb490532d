"""What every stage shares, apart from the pipeline that wires them: the Beam stage base (output
tags, counters, progress; `stages.base`) and the errors users see (`stages.errors`)."""
