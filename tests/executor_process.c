/* placeholder */
#include "helper.h"

int main(void)
{
	Suite *s = suite_create("executor_process");

	return test_main(s);
}
