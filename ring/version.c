#include "coil.h"

int coil_version(void)
{
	return COIL_VERSION_NUMBER;
}
