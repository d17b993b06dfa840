from demo.site import main

main()
