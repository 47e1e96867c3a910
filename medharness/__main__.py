from medharness.cli import main

main()
