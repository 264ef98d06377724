from gencompile.cli import main

main()
