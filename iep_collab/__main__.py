from iep_collab.cli import main

main()
