#!/bin/sh
echo "${GREETING:-hello}, built at $(date -u +%Y-%m-%d)"
