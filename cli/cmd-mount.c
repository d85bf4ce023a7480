/* mount, umount. */
#include "cli.h"

const lbx_cmd lbx_mount_cmds[] = {
    {0},
};
