/* dk_version: the one version string every tool prints for --version. */
#ifndef DK_VERSION_H
#define DK_VERSION_H

#define DK_VERSION "0.1.0"

#endif
