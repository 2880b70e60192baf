from frugalcv.cli import main

main()
