from gencompile.cli import main
from gencompile.process_end import run_then_exit

run_then_exit(main)
