from functions.cli import main

raise SystemExit(main())
