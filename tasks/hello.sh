#!/bin/sh
#% description Print a message on stdout (a first task to try)
#% param message=hello from podboot
#% timeout 60
printf '%s\n' {{message}}
