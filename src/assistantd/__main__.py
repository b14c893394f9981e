from assistantd.cli import main

main()
