import sys

from desktop_chat.app import main

sys.exit(main())
