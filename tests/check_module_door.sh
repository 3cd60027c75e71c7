#!/bin/sh
# check_module_door.sh -- a module sees the public header and nothing else.
#
# make check runs this with MODULE_CC and MODULE_CPPFLAGS, the compiler and
# include path that modules/ is built with (Makefile.am): a probe module
# that includes wshub.h compiles, one that includes a header of the core,
# net, engine or process layers does not (HACKING.md, "Layers").
: "${MODULE_CC:?run me through make check}"
fail=0
# The probe lives in a directory of its own: a quoted include looks
# beside the including file first, and the build tree's top has config.h.
dir=module_door.tmp
rm -rf $dir && mkdir $dir || exit 1
probe() {   # probe HEADER EXPECTED(ok|refused)
    printf '#include "%s"\nint probe;\n' "$1" > $dir/probe.c
    if $MODULE_CC $MODULE_CPPFLAGS -fsyntax-only $dir/probe.c \
        2> $dir/probe.err
    then got=ok; else got=refused; fi
    if [ "$got" = "$2" ]; then
        echo "ok: #include \"$1\" in a module: $got"
    else
        echo "FAIL: #include \"$1\" in a module: $got, expected $2"
        sed 's/^/    /' $dir/probe.err
        fail=1
    fi
}
probe wshub.h ok
probe hub/hub.h ok
for h in core/conf.h core/core.h net/conn.h engine/engine.h \
    process/worker.h src/core/conf.h config.h
do
    probe "$h" refused
done
rm -rf $dir
exit $fail
