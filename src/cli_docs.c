/* cli_docs.c — placeholder until the generator lands. */
#include "cli.h"
#include "util.h"

char *vm_cli_docs_generate(enum vm_cli_doc_kind kind)
{
    (void)kind;
    return xstrdup("");
}
