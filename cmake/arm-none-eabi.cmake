# arm-none-eabi.cmake — a CMake toolchain file for bare-metal Cortex-M with Debian's
# gcc-arm-none-eabi: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake ...
# The CPU flags are the project's (examples/firmware/CMakeLists.txt sets them per target).
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
# no OS to run a test program on: check the compiler by building a static library
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
