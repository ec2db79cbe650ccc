from symlight.cli import main

main()
