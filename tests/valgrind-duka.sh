#!/usr/bin/env bash
# Runs the real duka ($VALGRIND_DUKA_REAL_BIN) under valgrind memcheck. Any memory error or definite
# leak makes the process exit 99 and prints "ERROR SUMMARY" on stderr, so the end-to-end test
# that started it fails.
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  "$VALGRIND_DUKA_REAL_BIN" "$@"
