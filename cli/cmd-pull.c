/* Registry commands: pull, login, logout. */
#include "cli.h"

const lbx_cmd lbx_pull_cmds[] = {
    {0},
};
