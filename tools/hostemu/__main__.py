from hostemu.cli import main

main()
