from hardsight.cli import main

main()
