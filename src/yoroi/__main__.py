from yoroi.cli import main

main()
