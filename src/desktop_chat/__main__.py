import sys

from desktop_chat.launch import main

sys.exit(main())
